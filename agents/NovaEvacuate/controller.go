package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/novaha/novaha/lib/evacuation"
	"github.com/novaha/novaha/lib/nova"
	"github.com/novaha/novaha/lib/ocf"
	"github.com/novaha/novaha/lib/pacemaker"
)

// maxConfigSize bounds what the controller reads from its configuration pipe.
const maxConfigSize = 1 << 20

// dialRetryMax is the longest pause between two attempts to reach Nova at start-up.
const dialRetryMax = 30 * time.Second

// runController is the controller process: `NovaEvacuate controller <instance>`, with
// its configuration on its standard input (a pipe start filled). It runs until
// SIGTERM; its exit code says why it ended.
func runController(args []string, e env) int {
	if len(args) != 3 {
		fmt.Fprintln(os.Stderr, "NovaEvacuate controller: run by the start action only")
		return 2
	}
	var cfg childConfig
	err := json.NewDecoder(io.LimitReader(os.Stdin, maxConfigSize)).Decode(&cfg)
	os.Stdin.Close()
	if err != nil || cfg.Instance != args[2] {
		fmt.Fprintf(os.Stderr, "NovaEvacuate controller: reading the configuration: %v\n", err)
		return 2
	}
	log, closeLog := ocf.DaemonLogger(os.Stderr, os.Environ(), "NovaEvacuate("+cfg.Instance+")", cfg.Verbose, "rsc", cfg.Instance)
	defer closeLog()

	lock, err := os.OpenFile(cfg.Paths.Lock, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		log.Error("cannot open the lock file", "error", err.Error())
		return 1
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		log.Error("another controller of this resource runs on this node", "lock", cfg.Paths.Lock)
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := control(ctx, cfg, log, e); err != nil {
		log.Error("controller failed", "error", err.Error())
		return 1
	}
	log.Info("controller stopped")
	return 0
}

// control connects to Nova, retrying until it can, then runs the reconcile loop until
// ctx ends. While Nova cannot be reached, the status says so.
func control(ctx context.Context, cfg childConfig, log *slog.Logger, e env) error {
	ncfg := cfg.Nova.config()
	ncfg.Logger = log
	interval := cfg.Settings.Interval
	pause := interval
	var client *nova.Client
	for lastErr := ""; ; {
		dctx, cancel := context.WithTimeout(ctx, evacuation.DefaultCallTimeout)
		c, err := e.dial(dctx, ncfg)
		cancel()
		if err == nil {
			client = c
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		if err.Error() != lastErr {
			log.Warn("cannot reach Nova; retrying", "error", err.Error())
			lastErr = err.Error()
		}
		st := evacuation.Status{PID: os.Getpid(), Updated: e.now(), NovaOK: false, Error: err.Error()}
		if werr := evacuation.WriteStatus(cfg.Paths.Status, st); werr != nil {
			log.Error("status file not written", "error", werr.Error())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
		pause = min(2*pause, dialRetryMax)
	}
	defer client.Close()
	log.Info("connected to Nova", "max_microversion", client.MaxMicroversion().String(),
		"evacuate_microversion", client.EvacuateMicroversion(nova.EvacuateOpts{Stopped: cfg.Settings.Stopped}).String())

	ecfg := cfg.Settings.config()
	ecfg.Nova = client
	ecfg.Log = log
	ecfg.StatusFile = cfg.Paths.Status
	ecfg.PID = os.Getpid()
	if cfg.Settings.Stock {
		ecfg.Stock = evacuation.AttrdStock{Attrd: &pacemaker.Attrd{Log: log}}
	}
	ctrl, err := evacuation.New(ecfg)
	if err != nil {
		return err
	}
	if err := ctrl.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
