package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// newUsersCmd is the parent of the user-account verbs.
func newUsersCmd(ios IOStreams) *cobra.Command {
	return newGroupCmd("users", "Add, list and delete user accounts; set their roles and passwords", `
Manage your tenant's local user accounts, for setups without an identity
provider: people who log in with 'sortie login --username NAME' or the
console's username and password form. Passwords are hashed (argon2id) and
never shown; they are read from a prompt that does not echo, or from
standard input (one line), never from an argument. Users single sign-on
provisions are listed too. Needs the tenant-admin or organization-admin
role, except 'change-password', which a user runs for itself.`,
		newUsersAddCmd(ios), newUsersListCmd(ios), newUsersDeleteCmd(ios), newUsersSetRolesCmd(ios),
		newUsersSetPasswordCmd(ios), newUsersChangePasswordCmd(ios))
}

// passwordReader reads passwords: from a no-echo prompt on a terminal,
// else one line at a time from standard input.
type passwordReader struct {
	ios IOStreams
	in  *bufio.Reader
}

func newPasswordReader(ios IOStreams) *passwordReader {
	p := &passwordReader{ios: ios}
	if ios.In != nil {
		p.in = bufio.NewReader(io.LimitReader(ios.In, 64<<10))
	}
	return p
}

func (p *passwordReader) read(prompt string) (string, error) {
	if f, ok := p.ios.In.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(p.ios.ErrOut, "%s (not shown): ", prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(p.ios.ErrOut)
		if err != nil {
			return "", fmt.Errorf("read the password: %w", err)
		}
		if len(b) == 0 {
			return "", errors.New("the password is empty")
		}
		return string(b), nil
	}
	if p.in == nil {
		return "", usageErrorf("give the password on standard input")
	}
	line, err := p.in.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from standard input: %w", err)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", usageErrorf("%s: nothing on standard input (give one line per password)", prompt)
	}
	return line, nil
}
