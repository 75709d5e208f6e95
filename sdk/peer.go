package sdk

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"

	"github.com/framehub/framehub/fdpass"
)

// ProducerUIDEnv names the environment variable that sets the uids a
// producer may run as, when Options.ProducerUIDs is empty: a
// comma-separated list of uids or user names.
const ProducerUIDEnv = "FRAMEHUB_PRODUCER_UID"

// ErrUntrustedProducer means the process listening at the producer's
// address runs as a uid the consumer does not expect (see
// Options.ProducerUIDs): it may be another local user's impostor, so the
// SDK sent it nothing. Dial's error wraps it and names the uid and pid
// found.
var ErrUntrustedProducer = errors.New("sdk: the socket's owner is not an expected producer uid")

// producerUIDs returns the uids a producer may run as: opts' list, else
// $FRAMEHUB_PRODUCER_UID's, else root and this process's effective uid.
func producerUIDs(opts []int) ([]int, error) {
	if len(opts) > 0 {
		return slices.Clone(opts), nil
	}
	env := strings.TrimSpace(os.Getenv(ProducerUIDEnv))
	if env == "" {
		return []int{0, os.Geteuid()}, nil
	}
	var uids []int
	for _, f := range strings.Split(env, ",") {
		f = strings.TrimSpace(f)
		if n, err := strconv.Atoi(f); err == nil && n >= 0 {
			uids = append(uids, n)
			continue
		}
		u, err := user.Lookup(f)
		if err != nil {
			return nil, fmt.Errorf("sdk: %s=%q: %q is neither a uid nor a known user name: %w", ProducerUIDEnv, env, f, err)
		}
		n, err := strconv.Atoi(u.Uid)
		if err != nil {
			return nil, fmt.Errorf("sdk: %s=%q: user %q has uid %q: %w", ProducerUIDEnv, env, f, u.Uid, err)
		}
		uids = append(uids, n)
	}
	return uids, nil
}

// checkProducer reads the SO_PEERCRED of a dialled connection, which the
// kernel recorded when the producer called listen(2), and refuses a peer
// whose uid is not one of want.
func checkProducer(fc *fdpass.Conn, addr string, want []int) error {
	cred, err := fc.PeerCred()
	if err != nil {
		return fmt.Errorf("sdk: %s: check the producer's credentials: %w", addr, err)
	}
	if slices.Contains(want, cred.UID) {
		return nil
	}
	expected := make([]string, len(want))
	for i, u := range want {
		expected[i] = strconv.Itoa(u)
	}
	return fmt.Errorf("%w: %s is served by pid %d running as uid %d (gid %d), and the expected uids are %s; nothing was sent "+
		"to it. If that process is your producer, set %s=%d (or Options.ProducerUIDs)",
		ErrUntrustedProducer, addr, cred.PID, cred.UID, cred.GID, strings.Join(slices.Compact(expected), ", "), ProducerUIDEnv, cred.UID)
}
