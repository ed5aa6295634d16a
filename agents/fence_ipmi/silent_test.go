package main

import (
	"net"
	"strconv"
	"testing"
)

// silentUDP opens a UDP socket on 127.0.0.1 that reads everything and answers nothing,
// like a BMC behind a black-holing firewall. It returns the port.
func silentUDP(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	return strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)
}
