package virt

import (
	"sync"
	"time"

	"libvirt.org/go/libvirt"
)

var eventLoop struct {
	once sync.Once
	err  error
}

// startEventLoop registers libvirt's default event loop and runs it on a goroutine of
// its own, once per process. libvirt needs it for keepalive, which must be in place
// before the first connection is opened. It is also the first call into libvirt.so.0,
// so a missing library shows here, as ErrNoLibrary.
func startEventLoop() error {
	eventLoop.once.Do(func() {
		if err := libvirt.EventRegisterDefaultImpl(); err != nil {
			eventLoop.err = err
			return
		}
		go func() {
			for {
				if err := libvirt.EventRunDefaultImpl(); err != nil {
					// Never expected; do not spin if it happens.
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	})
	if eventLoop.err != nil {
		if libraryMissing(eventLoop.err) {
			return ErrNoLibrary
		}
		return wrap("starting libvirt's event loop", eventLoop.err)
	}
	return nil
}
