package challenge

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sekisho/sekisho/internal/automail"
	"github.com/sekisho/sekisho/internal/mailaddr"
)

// Language is challenge_language: the order of the two texts of a challenge mail. Both are
// always present, so a sender can read the mail whatever was guessed.
type Language string

// Languages.
const (
	LanguageAuto Language = "auto" // Japanese first for a sender in .jp, else English first
	LanguageJA   Language = "ja"   // Japanese first
	LanguageEN   Language = "en"   // English first
)

// MaxListed is how many recipients a challenge names; it says how many more there are.
const MaxListed = 20

// Subject is the challenge mail's subject, before RFC 2047 encoding.
const Subject = "【確認のお願い】メールの送信確認 / Please confirm your message"

// Challenge is what a challenge mail says. It has, on purpose, no field for anything of the
// held message (subject, body, its other headers): whatever a spammer wrote can never be
// sent on by sekisho to the forged sender (SPEC §4).
type Challenge struct {
	From       string    // challenge_from, e.g. postmaster@example.jp
	To         string    // the sender being asked to confirm
	Recipients []string  // our recipients the held mail is for, as the session accepted them
	URL        string    // the confirmation URL, {base_url}/c/{token}
	Language   Language  // "" means LanguageAuto
	Hostname   string    // right-hand side of the Message-ID; "" means From's domain
	Now        time.Time // the Date of the mail
	// MessageID is the Message-ID without angle brackets; "" means a random one at
	// Hostname.
	MessageID string
}

// Compose returns the challenge mail for c: RFC 5322 with CRLF line endings, UTF-8 text
// in quoted-printable (the relay need not offer 8BITMIME), both languages, the URL on a
// line of its own. The envelope sender for it is the null sender <> (RFC 3834 §3.3).
func Compose(c Challenge) ([]byte, error) {
	from, err := mailaddr.Parse(c.From)
	if err != nil {
		return nil, fmt.Errorf("challenge: from: %w", err)
	}
	to, err := mailaddr.Parse(c.To)
	if err != nil {
		return nil, fmt.Errorf("challenge: to: %w", err)
	}
	if len(c.Recipients) == 0 {
		return nil, errors.New("challenge: no recipients")
	}
	rcpts := make([]string, len(c.Recipients))
	for i, r := range c.Recipients {
		a, err := mailaddr.Parse(r)
		if err != nil {
			return nil, fmt.Errorf("challenge: recipient: %w", err)
		}
		rcpts[i] = a.String()
	}
	if err := checkURL(c.URL); err != nil {
		return nil, err
	}
	jaFirst, err := japaneseFirst(c.Language, to.Domain)
	if err != nil {
		return nil, err
	}
	raw, err := automail.Mail{
		From: from, To: to, Subject: Subject,
		JA: textJA(rcpts, c.URL), EN: textEN(rcpts, c.URL), JAFirst: jaFirst,
		AutoSubmitted: "auto-replied", // it answers the held message
		Hostname:      c.Hostname, Now: c.Now, MessageID: c.MessageID,
	}.Bytes()
	if err != nil {
		return nil, fmt.Errorf("challenge: %w", err)
	}
	return raw, nil
}

// japaneseFirst tells the order of the texts for lang and the sender's domain.
func japaneseFirst(lang Language, domain string) (bool, error) {
	switch lang {
	case LanguageJA:
		return true, nil
	case LanguageEN:
		return false, nil
	case LanguageAuto, "":
		return automail.Japanese(domain), nil
	}
	return false, fmt.Errorf("challenge: language %q: want auto, ja or en", lang)
}

// checkURL accepts an absolute http or https URL that can stand alone on a line.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("challenge: url: %w", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("challenge: url %q: want an absolute https or http URL", s)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f || r > 0x7e }) {
		return fmt.Errorf("challenge: url %q: spaces, controls or non-ASCII", s)
	}
	return nil
}

// listed returns the recipients to list and how many are left out.
func listed(rcpts []string) ([]string, int) {
	if len(rcpts) <= MaxListed {
		return rcpts, 0
	}
	return rcpts[:MaxListed], len(rcpts) - MaxListed
}

// textJA is the Japanese text. Lines stay within 36 full-width characters.
func textJA(rcpts []string, url string) string {
	var b strings.Builder
	b.WriteString("あなたのアドレスから、次の宛先へのメールをお預かりしています。\n\n")
	list, more := listed(rcpts)
	for _, r := range list {
		b.WriteString("  " + r + "\n")
	}
	if more > 0 {
		b.WriteString("  ほか " + strconv.Itoa(more) + " 件\n")
	}
	b.WriteString("\n" +
		"迷惑メール対策のため、はじめての送信者の方には、ご本人による送信で\n" +
		"あることの確認をお願いしています。お手数ですが、次の URL を開き、\n" +
		"表示されるページのボタンを押してください。確認が済むと、お預かり\n" +
		"しているメールを配送します。\n\n" +
		url + "\n\n" +
		"お心当たりのない場合は、何もする必要はありません。お預かりした\n" +
		"メールは配送されず、期限が過ぎると削除されます。\n\n" +
		"このメールは自動で送信しています。返信には対応できません。\n")
	return b.String()
}

// textEN is the English text. Lines stay within 72 characters.
func textEN(rcpts []string, url string) string {
	var b strings.Builder
	b.WriteString("We are holding a message from your address to:\n\n")
	list, more := listed(rcpts)
	for _, r := range list {
		b.WriteString("  " + r + "\n")
	}
	if more > 0 {
		b.WriteString("  and " + strconv.Itoa(more) + " more\n")
	}
	b.WriteString("\n" +
		"To keep spam out, we ask senders who are new to us to confirm that\n" +
		"they sent their message themselves. Please open the link below and\n" +
		"press the button on the page; your message will then be delivered.\n\n" +
		url + "\n\n" +
		"If you did not send it, you need not do anything: the message will\n" +
		"not be delivered, and it will be deleted when it expires.\n\n" +
		"This message was sent automatically; replies are not read.\n")
	return b.String()
}
