package envvar

import "strings"

// Expand applies Kubernetes' $(VAR) expansion to each of in (a container's
// command or args) against env ("KEY=value" entries, later ones winning).
// $$ is an escaped $, and a reference to an unknown variable, or one that is
// not closed, is left as written.
func Expand(in []string, env []string) []string {
	if in == nil {
		return nil
	}
	vars := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = expand(s, lookupIn(vars))
	}
	return out
}

// lookupIn returns a mapping that finds a name in the first of maps that
// has it, and otherwise leaves the reference as written.
func lookupIn(maps ...map[string]string) func(string) string {
	return func(name string) string {
		for _, m := range maps {
			if v, ok := m[name]; ok {
				return v
			}
		}
		return "$(" + name + ")"
	}
}

// expand replaces each $(NAME) in s with mapping(NAME), following the rules
// of Kubernetes' forked expansion package: "$$" yields "$", a "$" followed by
// anything but "(" or "$" is kept, and an unterminated "$(" is kept.
func expand(s string, mapping func(string) string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			continue
		}
		b.WriteString(s[last:i])
		switch next := s[i+1]; next {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString("$(")
				i++
				break
			}
			b.WriteString(mapping(s[i+2 : i+2+end]))
			i += 2 + end
		default:
			b.WriteByte('$')
			b.WriteByte(next)
			i++
		}
		last = i + 1
	}
	b.WriteString(s[last:])
	return b.String()
}
