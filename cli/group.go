package cli

import (
	"strings"

	"github.com/spf13/cobra"
)

// newGroupCmd is a parent command that only holds subcommands: called
// alone, or with an unknown subcommand, it is a usage error naming them.
func newGroupCmd(use, short, long string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  strings.TrimSpace(long),
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var names []string
			for _, c := range cmd.Commands() {
				if c.IsAvailableCommand() {
					names = append(names, c.Name())
				}
			}
			if len(args) > 0 {
				return usageErrorf("unknown %s subcommand %q (subcommands: %s)", cmd.Name(), args[0], strings.Join(names, ", "))
			}
			return usageErrorf("%s needs a subcommand: %s", cmd.Name(), strings.Join(names, ", "))
		},
	}
	cmd.AddCommand(subs...)
	return cmd
}
