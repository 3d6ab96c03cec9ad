# Tests of the cloud-init rule of the default policy (policy.hcl). Run them with `imdsmend test`.
# Facts are shaped as the cloud_init probe fills them.

test "cloud-init fell back to DataSourceNone while Ec2 was configured" {
  facts = {
    cloud_init = {
      installed = true, ran = true, finished = true, datasource = "DataSourceNone", datasource_name = "None",
      errors = [], cloud_name = "none", datasource_list = ["Ec2", "None"], ec2_configured = true,
      boot_id = "0f6b1e9c-6f0e-4b8a-9a59-3d1b2c4e5f60"
    }
  }
  expect = ["cloud_init_missed_metadata"]
}

test "cloud-init found the Ec2 datasource" {
  facts = {
    cloud_init = {
      installed = true, ran = true, finished = true, datasource = "DataSourceEc2Local", datasource_name = "Ec2",
      cloud_name = "aws", datasource_list = ["Ec2", "None"], ec2_configured = true
    }
  }
  expect = []
}

test "DataSourceNone on a host not configured for Ec2 is deliberate" {
  facts = {
    cloud_init = {
      installed = true, ran = true, finished = true, datasource = "DataSourceNone", datasource_name = "None",
      datasource_list = ["NoCloud", "None"], ec2_configured = false
    }
  }
  expect = []
}

test "cloud-init still running has not missed anything yet" {
  facts = {
    cloud_init = { installed = true, ran = true, finished = false, stage = "init-local", ec2_configured = true }
  }
  expect = []
}

test "a previous boot's DataSourceNone does not count" {
  facts = {
    cloud_init = { installed = true, ran = false, finished = false, datasource_list = ["Ec2", "None"], ec2_configured = true }
  }
  expect = []
}

test "no cloud-init installed" {
  facts  = { cloud_init = { installed = false } }
  expect = []
}

test "a failed cloud_init probe decides no cloud-init rule" {
  facts   = { cloud_init = null }
  expect  = []
  unknown = ["cloud_init_missed_metadata"]
}
