package realtime

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestModuleHistoryPatternCheckIsPathMatch: the module's plan-time check of
// history[].pattern (a regex in variables.tf) accepts exactly the globs the
// functions accept at cold start (HistoryRule.Validate, Go's path.Match), so
// no plan passes that every function then refuses. Every pattern of up to
// five characters over the glob's special characters is compared.
func TestModuleHistoryPatternCheckIsPathMatch(t *testing.T) {
	src, err := os.ReadFile("../../variables.tf")
	require.NoError(t, err)
	m := regexp.MustCompile(`for r in var\.history : can\(regex\("((?:[^"\\]|\\.)*)", r\.pattern\)\)`).FindSubmatch(src)
	require.NotNil(t, m, "the history pattern check in variables.tf")
	hcl := strings.NewReplacer(`\\`, `\`, `\"`, `"`).Replace(string(m[1])) // Terraform's regex is Go's RE2
	check, err := regexp.Compile(hcl)
	require.NoError(t, err)

	alphabet := []string{"a", "z", "-", "[", "]", "^", `\`, "*", "?"}
	var walk func(prefix string, n int)
	walk = func(prefix string, n int) {
		if prefix != "" {
			module := check.MatchString(prefix)
			functions := HistoryRule{Pattern: prefix, Size: 1, TTL: time.Hour}.Validate() == nil
			if module != functions {
				t.Errorf("pattern %q: the module accepts it: %v, the functions: %v", prefix, module, functions)
			}
		}
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			walk(prefix+c, n-1)
		}
	}
	walk("", 5)
}
