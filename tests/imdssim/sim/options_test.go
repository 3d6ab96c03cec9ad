package sim

import (
	"net"
	"net/http"
	"net/url"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/imdsmend/imdsmend/tests/ec2sim/ec2"
)

// TestFollowsEC2Options: IMDS enforces the EC2 simulator's options for its instance —
// disabled answers 403 to everything, optional tokens let tokenless GETs in — and a
// change made through the API counts once it is applied.
func TestFollowsEC2Options(t *testing.T) {
	api := ec2.NewDefault(ec2.Config{ApplyAfter: 1})
	s, base := serve(t, Config{})
	s.SetOptionsSource(func() ec2.Options {
		o, _ := api.EffectiveOptions(InstanceID)
		return o
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = api.Serve(l) }()
	t.Cleanup(func() { _ = api.Close() })
	apiURL := "http://" + l.Addr().String()
	c := &http.Client{}
	probe := func() [2]int {
		put := call(t, c, http.MethodPut, base+TokenPath, TTLHeader, "60")
		get := call(t, c, http.MethodGet, base+"/latest/meta-data/instance-id")
		return [2]int{put.Status, get.Status}
	}
	ec2Call := func(form url.Values) int {
		resp, err := http.PostForm(apiURL, form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var got [][2]int
	got = append(got, probe())
	if err := api.SetOptions(InstanceID, ec2.Options{HTTPEndpoint: ec2.Enabled, HTTPTokens: ec2.Optional, HopLimit: 2}); err != nil {
		t.Fatal(err)
	}
	got = append(got, probe())
	if st := ec2Call(url.Values{"Action": {"ModifyInstanceMetadataOptions"}, "Version": {ec2.APIVersion}, "InstanceId": {InstanceID}, "HttpEndpoint": {"disabled"}}); st != 200 {
		t.Fatalf("modify: %d", st)
	}
	got = append(got, probe()) // pending: IMDS still answers
	describe := url.Values{"Action": {"DescribeInstances"}, "Version": {ec2.APIVersion}}
	ec2Call(describe) // shows pending
	ec2Call(describe) // applies
	got = append(got, probe())
	want := [][2]int{{200, 401}, {200, 200}, {200, 200}, {403, 403}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PUT, tokenless GET statuses (-want +got):\n%s", diff)
	}
	if o := s.Options(); o.HTTPEndpoint != ec2.Disabled {
		t.Errorf("enforced options %+v", o)
	}
}

// TestSetHops: the TTL (IPv4) or hop limit (IPv6) is set on the connection and put back.
func TestSetHops(t *testing.T) {
	for _, tt := range []struct {
		network, addr string
		level, opt    int
	}{
		{"tcp4", "127.0.0.1:0", unix.IPPROTO_IP, unix.IP_TTL},
		{"tcp6", "[::1]:0", unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS},
	} {
		l, err := net.Listen(tt.network, tt.addr)
		if err != nil {
			t.Skipf("%s: %v", tt.network, err)
		}
		defer l.Close()
		go func() {
			if c, err := net.Dial(tt.network, l.Addr().String()); err == nil {
				defer c.Close()
				_, _ = c.Read(make([]byte, 1))
			}
		}()
		conn, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		read := func() int {
			raw, _ := conn.(syscall.Conn).SyscallConn()
			var v int
			_ = raw.Control(func(fd uintptr) { v, _ = unix.GetsockoptInt(int(fd), tt.level, tt.opt) })
			return v
		}
		before := read()
		restore, err := setHops(conn, 1)
		if err != nil {
			t.Fatal(err)
		}
		during := read()
		restore()
		if during != 1 || read() != before {
			t.Errorf("%s: hops %d while set, %d after (want 1, then %d)", tt.network, during, read(), before)
		}
		conn.Close()
	}
}
