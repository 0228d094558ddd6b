package pki

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Join tokens use k3s's format: K10<CA hash>::<username>:<secret>, where
// the CA hash is the hex SHA-256 of the server's CA certificate PEM bytes.
const (
	tokenPrefix = "K10"
	// TokenUsername is the username of server join tokens.
	TokenUsername = "server"
)

// Token is a parsed join token.
type Token struct {
	// CAHash is the hex SHA-256 of the CA certificate PEM; empty when the
	// token was given as a bare secret.
	CAHash   string
	Username string
	Secret   string
}

// String returns the full K10 form, or only the secret when CAHash is
// empty (the full form cannot be built without it).
func (t Token) String() string {
	if t.CAHash == "" {
		return t.Secret
	}
	return tokenPrefix + t.CAHash + "::" + t.Username + ":" + t.Secret
}

// ParseToken parses a full K10 token or a bare secret, ignoring surrounding
// white space (token files end in a newline). A bare secret gets the
// username "server" and an empty CAHash.
func ParseToken(s string) (Token, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Token{}, errors.New("token is empty")
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return Token{}, errors.New("token contains white space or control characters")
	}
	rest, full := strings.CutPrefix(s, tokenPrefix)
	hash, creds, ok := strings.Cut(rest, "::")
	if !full || !ok {
		if full && isHexHash(rest) {
			return Token{}, errors.New("token has a CA hash but no ::username:secret part")
		}
		return Token{CAHash: "", Username: TokenUsername, Secret: s}, nil
	}
	if !isHexHash(hash) {
		return Token{}, fmt.Errorf("token CA hash %q is not a hex SHA-256", hash)
	}
	user, secret, ok := strings.Cut(creds, ":")
	if !ok || user == "" || secret == "" {
		return Token{}, errors.New("token is not of the form K10<ca-hash>::<username>:<secret>")
	}
	return Token{CAHash: strings.ToLower(hash), Username: user, Secret: secret}, nil
}

// EnsureToken returns the server's join token for the CA in caPEM and
// stores its full form in path (0600), so operators and agents can read it.
//   - given empty: the token stored in path, or a new random 32-hex-digit
//     secret when there is none;
//   - given a bare secret: that secret;
//   - given a full K10 token: that token, which must carry this CA's hash.
//
// A token carrying another CA's hash is an error: it was issued by another
// server, or the CA was regenerated, and agents would refuse this server.
func EnsureToken(path string, given string, caPEM []byte) (Token, error) {
	source := "the given token"
	if strings.TrimSpace(given) == "" {
		source = "the token in " + path
		data, err := os.ReadFile(path)
		switch {
		case err == nil:
			given = string(data)
		case os.IsNotExist(err):
			secret, err := randomSecret()
			if err != nil {
				return Token{}, err
			}
			given = secret
		default:
			return Token{}, fmt.Errorf("read token: %w", err)
		}
	}
	tok, err := ParseToken(given)
	if err != nil {
		return Token{}, fmt.Errorf("%s: %w", source, err)
	}
	caHash := CAHash(caPEM)
	if tok.CAHash == "" {
		tok.CAHash = caHash
	} else if !VerifyCAHash(caPEM, tok.CAHash) {
		return Token{}, fmt.Errorf("%s is for a CA with hash %s, but this server's CA has hash %s: "+
			"use a token issued by this server, or give only its secret part", source, tok.CAHash, caHash)
	}
	if err := storeToken(path, tok); err != nil {
		return Token{}, err
	}
	return tok, nil
}

// storeToken writes the full token to path unless it already holds it.
func storeToken(path string, tok Token) error {
	data := []byte(tok.String() + "\n")
	if old, err := os.ReadFile(path); err == nil && string(old) == string(data) {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm() == keyMode {
			return nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), dirMode); err != nil {
		return fmt.Errorf("store token: %w", err)
	}
	return writeFileAtomic(path, data, keyMode)
}

// CAHash returns the hex SHA-256 of the CA certificate PEM bytes, the hash
// a K10 token carries.
func CAHash(caPEM []byte) string {
	sum := sha256.Sum256(caPEM)
	return hex.EncodeToString(sum[:])
}

// VerifyCAHash reports whether caPEM, as served by a server, has the hash
// from a join token. Agents check this before sending the token's secret.
func VerifyCAHash(caPEM []byte, hash string) bool {
	want := []byte(CAHash(caPEM))
	return subtle.ConstantTimeCompare(want, []byte(strings.ToLower(hash))) == 1
}

func randomSecret() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func isHexHash(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
