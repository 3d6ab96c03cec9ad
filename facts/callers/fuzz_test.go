package callers

import (
	"bytes"
	"testing"
)

// FuzzParseSockets feeds arbitrary /proc/net/tcp text to the parser: it must never
// panic, keep only connections to IMDS's port 80 that are not listening, and hold no
// more than its bound.
func FuzzParseSockets(f *testing.F) {
	f.Add([]byte("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 0100007F:9C40 FEA9FEA9:0050 01 00000000:00000000 00:00000000 00000000     0        0 101 1 0000000000000000 20 4 30 10 -1\n"))
	f.Add([]byte("0: a FEA9FEA9:0050 0A 0 0 0 0 0 7\n"))
	f.Add([]byte("0: a C20E00FD000000000000000054020000:0050 06 0 0 0 0 0 0\n   \n\x00"))
	f.Add([]byte("0: a FEA9FEA9:0050 01 0 0 0 0 0 99999999999999999999999\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		conns, err := parseSockets(bytes.NewReader(data), nil)
		if err != nil {
			return // a line longer than the scanner's buffer
		}
		if len(conns) > maxSockets {
			t.Fatalf("%d connections kept", len(conns))
		}
		// Each kept connection comes from a line to IMDS that is not listening.
		var f [10][]byte
		for _, c := range conns {
			found := false
			for line := range bytes.Lines(data) {
				line = bytes.TrimRight(line, "\n")
				if fields(line, f[:]) == len(f) && string(f[1]) == c.local && imdsRemote[string(f[2])] && string(f[3]) != "0A" {
					found = true
					break
				}
			}
			if !found {
				t.Fatalf("connection %+v kept from no line to IMDS that is not listening", c)
			}
		}
	})
}
