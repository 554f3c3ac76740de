package webauth

import (
	"embed"
	"errors"
	"net/http"
	"strings"

	"github.com/sekisho/sekisho/internal/webui"
)

//go:embed templates/*.html
var templates embed.FS

var texts = webui.Catalog{
	webui.Ja: {
		"login_title": "ログイン", "login_address": "メールアドレス", "login_password": "パスワード",
		"login_button": "ログイン", "login_bad": "メールアドレスかパスワードが違います。",
		"login_toomany": "失敗が続いたため、しばらくログインできません。後でもう一度お試しください。",
		"login_expired": "フォームの有効期限が切れました。もう一度入力してください。",
		"login_error":   "一時的なエラーです。後でもう一度お試しください。",
	},
	webui.En: {
		"login_title": "Log in", "login_address": "Mail address", "login_password": "Password",
		"login_button": "Log in", "login_bad": "Wrong address or password.",
		"login_toomany": "Too many failed logins. Please try again later.",
		"login_expired": "The form expired. Please enter your details again.",
		"login_error":   "A temporary error occurred. Please try again later.",
	},
}

// loginPage is the login form's data.
type loginPage struct {
	Address string
	Next    string
	Token   string // double-submit token, also in LoginCookie
}

// Pages serves /login and /logout.
type Pages struct {
	Auth  *Auth
	pages *webui.Pages
	// Home is where a login without a next= goes.
	Home string
}

// NewPages parses the login page.
func NewPages(a *Auth, home string) (*Pages, error) {
	p, err := webui.ParsePages(templates, "templates/*.html", texts, a.Log)
	if err != nil {
		return nil, err
	}
	return &Pages{Auth: a, pages: p, Home: home}, nil
}

// Register adds the routes to mux.
func (p *Pages) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /login", p.form)
	mux.HandleFunc("POST /login", p.login)
	mux.HandleFunc("POST /logout", p.logout)
}

// localPath returns next when it is a path on this site, else home.
func localPath(next, home string) string {
	if strings.HasPrefix(next, "/") && !strings.HasPrefix(next, "//") && !strings.HasPrefix(next, "/\\") && !strings.ContainsAny(next, "\r\n") {
		return next
	}
	return home
}

func (p *Pages) render(w http.ResponseWriter, r *http.Request, status int, lp loginPage, problem string) {
	if lp.Token == "" {
		lp.Token = RandomToken()
	}
	http.SetCookie(w, &http.Cookie{Name: LoginCookie, Value: lp.Token, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	page := webui.Page{Data: lp}
	if problem != "" {
		page.Error = texts[webui.PickLang(r)][problem]
	}
	p.pages.Render(w, r, status, "login.html", page)
}

func (p *Pages) form(w http.ResponseWriter, r *http.Request) {
	if _, ok := p.Auth.Lookup(r); ok {
		http.Redirect(w, r, localPath(r.URL.Query().Get("next"), p.Home), http.StatusSeeOther)
		return
	}
	p.render(w, r, http.StatusOK, loginPage{Next: r.URL.Query().Get("next")}, "")
}

func (p *Pages) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	address := strings.ToLower(strings.TrimSpace(r.PostFormValue("address")))
	lp := loginPage{Address: address, Next: r.PostFormValue("next")}
	c, err := r.Cookie(LoginCookie)
	if err != nil || c.Value == "" || r.PostFormValue("token") != c.Value {
		p.render(w, r, http.StatusForbidden, lp, "login_expired")
		return
	}
	_, err = p.Auth.Login(w, r, address, r.PostFormValue("password"))
	switch {
	case errors.Is(err, ErrBadLogin):
		p.render(w, r, http.StatusUnauthorized, lp, "login_bad")
		return
	case errors.Is(err, ErrTooMany):
		p.render(w, r, http.StatusTooManyRequests, lp, "login_toomany")
		return
	case err != nil:
		p.Auth.Log.Error("login", "err", err)
		p.render(w, r, http.StatusServiceUnavailable, lp, "login_error")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: LoginCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true})
	http.Redirect(w, r, localPath(lp.Next, p.Home), http.StatusSeeOther)
}

func (p *Pages) logout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	who, ok := p.Auth.Lookup(r)
	if ok && !CheckCSRF(r, who) {
		http.Error(w, "Forbidden: missing or wrong CSRF token", http.StatusForbidden)
		return
	}
	p.Auth.Logout(w, r)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
