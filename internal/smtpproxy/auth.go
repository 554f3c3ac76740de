package smtpproxy

import (
	"context"

	"github.com/emersion/go-sasl"

	"github.com/sekisho/sekisho/internal/password"
)

// checkPassword reports whether pw is the password of user.
func (p *Proxy) checkPassword(ctx context.Context, user, pw string) bool {
	u, err := p.deps.Store.GetUser(ctx, user)
	if err != nil {
		return false
	}
	ok, err := password.Check(u.PasswordHash, pw)
	return err == nil && ok
}

// loginServer is the server side of the AUTH LOGIN mechanism (draft-murchison-sasl-login),
// which go-sasl offers only as a client: it asks for the user name, then the password.
type loginServer struct {
	check func(user, pw string) error
	user  string
	step  int
}

func newLoginServer(check func(user, pw string) error) sasl.Server {
	return &loginServer{check: check}
}

func (s *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch s.step {
	case 0:
		s.step++
		if response != nil { // initial response carries the user name
			s.user = string(response)
			s.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		s.user = string(response)
		s.step++
		return []byte("Password:"), false, nil
	case 2:
		s.step++
		return nil, true, s.check(s.user, string(response))
	}
	return nil, true, sasl.ErrUnexpectedClientResponse
}
