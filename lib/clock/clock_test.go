package clock

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestRealSleep(t *testing.T) {
	var c Clock = Real{}
	start := c.Now()
	if err := c.Sleep(context.Background(), 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if c.Now().Sub(start) < 20*time.Millisecond {
		t.Errorf("slept less than asked")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep on an ended context = %v", err)
	}
	if err := c.Sleep(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("zero Sleep on an ended context = %v", err)
	}
}
