package ec2

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
)

// BenchmarkGenerate: a 10,000-instance fleet in 4 regions and 3 accounts.
func BenchmarkGenerate(b *testing.B) {
	for b.Loop() {
		if err := New(Config{}).Generate(FleetSpec{Instances: 10000, Regions: 4, Accounts: 3, Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDescribeFleet: every page of a 10,000-instance, 4-region fleet through the SDK,
// at the largest page size, one region after the other.
func BenchmarkDescribeFleet(b *testing.B) {
	s := New(Config{})
	if err := s.Generate(FleetSpec{Instances: 10000, Regions: 4, Accounts: 1, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	url := serve(b, s)
	for b.Loop() {
		n := 0
		for _, region := range s.Regions() {
			p := awsec2.NewDescribeInstancesPaginator(client(url, region, "AKIDEXAMPLE"), &awsec2.DescribeInstancesInput{MaxResults: aws.Int32(1000)})
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if err != nil {
					b.Fatal(err)
				}
				n += len(page.Reservations)
			}
		}
		if n != 10000 {
			b.Fatalf("%d instances", n)
		}
	}
}
