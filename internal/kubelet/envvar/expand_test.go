package envvar

import (
	"slices"
	"testing"
)

func TestExpandFollowsKubernetesRules(t *testing.T) {
	env := []string{"A=a", "B=b", "EMPTY=", "A2=x=y"}
	tests := []struct {
		in, want string
	}{
		{"$(A)", "a"},
		{"pre-$(A)-post", "pre-a-post"},
		{"$(A)$(B)", "ab"},
		{"$(A2)", "x=y"},
		{"$(EMPTY)", ""},
		{"$$(A)", "$(A)"},
		{"$$$(A)", "$a"},
		{"$$", "$"},
		{"$(UNKNOWN)", "$(UNKNOWN)"},
		{"$(A", "$(A"},
		{"$A", "$A"},
		{"a$", "a$"},
		{"$", "$"},
		{"$()", "$()"},
		{"no refs", "no refs"},
		{"$(A)$", "a$"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := Expand([]string{tt.in}, env)
			if got[0] != tt.want {
				t.Errorf("Expand(%q) = %q, want %q", tt.in, got[0], tt.want)
			}
		})
	}
}

func TestExpandKeepsNilAndUsesLastDefinition(t *testing.T) {
	if got := Expand(nil, []string{"A=a"}); got != nil {
		t.Errorf("Expand(nil) = %q, want nil", got)
	}
	got := Expand([]string{"$(A)", "x"}, []string{"A=1", "A=2"})
	if want := []string{"2", "x"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
