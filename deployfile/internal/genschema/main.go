package main

import (
	"fmt"
	"os"

	"github.com/sortie-cd/sortie/deployfile"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: genschema OUTPUT")
		os.Exit(2)
	}
	b, err := deployfile.Schema()
	if err == nil {
		err = os.WriteFile(os.Args[1], b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "genschema:", err)
		os.Exit(1)
	}
}
