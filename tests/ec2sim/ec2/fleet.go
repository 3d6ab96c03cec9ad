package ec2

import (
	"fmt"
	"math/rand/v2"
	"sort"
)

// FleetSpec describes a generated fleet.
type FleetSpec struct {
	Instances int
	Regions   int
	Accounts  int
	Seed      int64
}

// FleetRegions are the regions a generated fleet uses, in order.
var FleetRegions = []string{"us-east-1", "eu-central-1", "us-west-2", "eu-west-1", "ap-southeast-2", "ap-northeast-1", "sa-east-1", "ca-central-1"}

// FleetAccount is the i-th account of a generated fleet; the first is the default account,
// so static keys see it without AssumeRole.
func FleetAccount(i int) string {
	if i == 0 {
		return DefaultAccount
	}
	return fmt.Sprintf("2%011d", i)
}

// The mix of a generated fleet, in percent. Container hosts are tagged as EKS nodes
// (eks:cluster-name, kubernetes.io/cluster/NAME) or ECS container instances
// (AmazonECSManaged); a third of them have hop limit 1, which breaks their containers.
const (
	pctEKS            = 20
	pctECS            = 10
	pctHop1OfHosts    = 33
	pctDisabled       = 2
	pctTokensOptional = 15
	pctPending        = 2
	pctIPv6           = 5
	pctStopped        = 5
)

// Generate replaces the server's instances with a seeded fleet: the same spec always gives
// the same instances. Every account offers RoleARN(account) to AssumeRole; each region has
// three AMIs, one of them with ImdsSupport v2.0.
func (s *Server) Generate(spec FleetSpec) error {
	if spec.Instances < 0 || spec.Regions < 1 || spec.Regions > len(FleetRegions) || spec.Accounts < 1 {
		return fmt.Errorf("fleet: want instances ≥ 0, 1 to %d regions and at least one account; got %+v", len(FleetRegions), spec)
	}
	rng := rand.New(rand.NewPCG(uint64(spec.Seed), 0x1d5e7d))
	regions := append([]string(nil), FleetRegions[:spec.Regions]...)
	sort.Strings(regions)
	teams := []string{"web", "api", "data", "batch"}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.instances = make(map[string]*instance, spec.Instances)
	s.order = make([]string, 0, spec.Instances)
	s.regions = regions
	s.images = map[string]Image{}
	for _, r := range regions {
		for j, name := range []string{"al2023-ami-2023.6.20241010.0-kernel-6.1-x86_64", "amzn2-ami-hvm-2.0.20240916.0-x86_64-gp2", "ubuntu-jammy-22.04-amd64-server-20240927"} {
			img := Image{ID: fmt.Sprintf("ami-%017x", rng.Uint64()>>4), Region: r, Name: name}
			if j == 0 {
				img.ImdsSupport = "v2.0"
			}
			s.images[r+"/"+img.ID] = img
		}
	}
	imagesByRegion := map[string][]string{}
	for k, img := range s.images {
		imagesByRegion[img.Region] = append(imagesByRegion[img.Region], k)
	}
	for _, r := range regions {
		sort.Strings(imagesByRegion[r])
	}
	for a := 0; a < spec.Accounts; a++ {
		s.roles[RoleARN(FleetAccount(a))] = true
	}
	for i := 0; i < spec.Instances; i++ {
		region := regions[i%len(regions)]
		account := FleetAccount((i / len(regions)) % spec.Accounts)
		id := fmt.Sprintf("i-0%016x", rng.Uint64())
		if _, dup := s.instances[id]; dup {
			i--
			continue
		}
		imgs := imagesByRegion[region]
		img := s.images[imgs[rng.IntN(len(imgs))]]
		team := teams[rng.IntN(len(teams))]
		in := Instance{ID: id, Region: region, Account: account, ImageID: img.ID, StateName: "running", Type: "m6i.large", Options: DefaultOptions()}
		in.Tags = []Tag{{"Name", fmt.Sprintf("%s-%05d", team, i)}, {"Team", team}}
		roll := rng.IntN(100)
		host := false
		switch {
		case roll < pctEKS:
			cluster := team + "-eks"
			in.Tags = append(in.Tags, Tag{"eks:cluster-name", cluster}, Tag{"kubernetes.io/cluster/" + cluster, "owned"})
			host = true
		case roll < pctEKS+pctECS:
			in.Tags = append(in.Tags, Tag{"AmazonECSManaged", ""})
			host = true
		}
		if host && rng.IntN(100) < pctHop1OfHosts {
			in.Options.HopLimit = 1
		}
		if img.ImdsSupport == "" && rng.IntN(100) < pctTokensOptional*2 {
			// AMIs without ImdsSupport launch with IMDSv1 allowed unless the account says otherwise.
			in.Options.HTTPTokens = Optional
		}
		if rng.IntN(100) < pctDisabled {
			in.Options.HTTPEndpoint = Disabled
		}
		if rng.IntN(100) < pctIPv6 {
			in.Options.HTTPProtocolIPv6 = Enabled
		}
		if rng.IntN(100) < pctStopped {
			in.StateName = "stopped"
		}
		if rng.IntN(100) < pctPending {
			in.Options.State = StatePend
		}
		s.addLocked(in)
	}
	return nil
}
