# An AMI with imdsmend installed: from its first boot, imdsmend-boot.service mends IMDS
# blockers before cloud-init reads the metadata, and imdsmend.timer keeps checking
# (docs/install.md). Build the package first (make package), then:
#
#   packer init packaging/packer
#   packer build -var package=dist/imdsmend_0.0.1-1_amd64.deb packaging/packer

packer {
  required_plugins {
    amazon = {
      version = ">= 1.3.0"
      source  = "github.com/hashicorp/amazon"
    }
  }
}

variable "package" {
  type        = string
  description = "The imdsmend .deb that make package built."
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "instance_type" {
  type    = string
  default = "t3.micro"
}

locals {
  stamp = regex_replace(timestamp(), "[- TZ:]", "")
}

source "amazon-ebs" "debian" {
  region        = var.region
  instance_type = var.instance_type
  ssh_username  = "admin"
  ami_name      = "debian-12-imdsmend-${local.stamp}"

  source_ami_filter {
    filters = {
      name                = "debian-12-amd64-*"
      architecture        = "x86_64"
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
    # Debian's own account.
    owners      = ["136693071363"]
    most_recent = true
  }

  # The build instance, and the AMI's default: IMDSv2 only, one hop.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }
  imds_support = "v2.0"
}

build {
  sources = ["source.amazon-ebs.debian"]

  provisioner "file" {
    source      = var.package
    destination = "/tmp/imdsmend.deb"
  }

  provisioner "shell" {
    inline = [
      "sudo apt-get install -y /tmp/imdsmend.deb",
      "rm /tmp/imdsmend.deb",
      # The package enabled these; fail the build if it did not.
      "systemctl is-enabled imdsmend-boot.service imdsmend.timer",
      "sudo imdsmend validate",
      # What the image carries now, in the build log; exit 2 (findings) is not an error.
      "sudo imdsmend check || test $? -eq 2",
    ]
  }
}
