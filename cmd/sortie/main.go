package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/sortie-cd/sortie/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.MainAs(ctx, filepath.Base(os.Args[0]), os.Args[1:], cli.SystemStreams())
	stop()
	os.Exit(code)
}
