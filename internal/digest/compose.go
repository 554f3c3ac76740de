package digest

import (
	"errors"
	"fmt"
	"mime"
	"strconv"
	"strings"
	"time"

	"github.com/sekisho/sekisho/internal/automail"
	"github.com/sekisho/sekisho/internal/mailaddr"
)

// MaxItems is how many held messages one digest lists; it says how many more there are.
const MaxItems = 100

// Item is one held message in a digest.
type Item struct {
	From     string // envelope sender; "" is the null sender
	Subject  string // as held (RFC 2047 words are decoded for display)
	Received time.Time
	Size     int64
	Reason   string // why it was held
	Auth     string // the sender authentication (Authentication-Results style); "" if not checked
	URL      string // {base_url}/d/{token}
}

// Digest is what one digest mail says.
type Digest struct {
	From      string // challenge_from
	To        string // the user
	Items     []Item
	Hostname  string    // right-hand side of the Message-ID; "" means From's domain
	Now       time.Time // the Date of the mail
	MessageID string    // without angle brackets; "" means a random one at Hostname
}

// Compose returns the digest mail (package automail): Japanese first for a user in .jp,
// Auto-Submitted: auto-generated (RFC 3834: it answers nothing).
func Compose(d Digest) ([]byte, error) {
	from, err := mailaddr.Parse(d.From)
	if err != nil {
		return nil, fmt.Errorf("digest: from: %w", err)
	}
	to, err := mailaddr.Parse(d.To)
	if err != nil {
		return nil, fmt.Errorf("digest: to: %w", err)
	}
	if len(d.Items) == 0 {
		return nil, errors.New("digest: nothing to list")
	}
	items, more := d.Items, 0
	if len(items) > MaxItems {
		items, more = items[:MaxItems], len(items)-MaxItems
	}
	n := strconv.Itoa(len(d.Items))
	raw, err := automail.Mail{
		From: from, To: to, Subject: "保留中のメール " + n + " 通 / Held mail: " + n + " message(s)",
		JA: textJA(items, more), EN: textEN(items, more), JAFirst: automail.Japanese(to.Domain),
		AutoSubmitted: "auto-generated", // it answers nothing
		Hostname:      d.Hostname, Now: d.Now, MessageID: d.MessageID,
	}.Bytes()
	if err != nil {
		return nil, fmt.Errorf("digest: %w", err)
	}
	return raw, nil
}

// Display cleans a held message's subject or sender for showing: RFC 2047 words decoded,
// control characters made spaces, at most 200 bytes.
func Display(s string) string {
	if dec, err := new(mime.WordDecoder).DecodeHeader(s); err == nil {
		s = dec
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "")
	}
	return s
}

// authText is the authentication result to show, or none when there is none.
func authText(auth, none string) string {
	if auth == "" {
		return none
	}
	return Display(auth)
}

// Sender is Display for an envelope sender, the null sender shown as <>.
func Sender(from string) string {
	if from == "" {
		return "<>"
	}
	return Display(from)
}

func textJA(items []Item, more int) string {
	var b strings.Builder
	b.WriteString("あなた宛てのメールのうち、次のものを保留しています。届けてよいものは\n" +
		"リンクを開き、ページのボタンで配送または削除してください。\n" +
		"保留したメールは期限が過ぎると削除されます。\n\n")
	for i, it := range items {
		fmt.Fprintf(&b, "%d. 差出人: %s\n   件名: %s\n   受信: %s\n   サイズ: %d バイト\n   送信者認証: %s\n   理由: %s\n   %s\n\n",
			i+1, Sender(it.From), Display(it.Subject), it.Received.Local().Format("2006-01-02 15:04"), it.Size, authText(it.Auth, "未確認"), Display(it.Reason), it.URL)
	}
	if more > 0 {
		fmt.Fprintf(&b, "ほか %d 通\n\n", more)
	}
	b.WriteString("このメールは自動で送信しています。\n")
	return b.String()
}

func textEN(items []Item, more int) string {
	var b strings.Builder
	b.WriteString("These messages to you are being held. Open a link to deliver or delete\n" +
		"a message with the buttons on its page. Held mail is deleted when it\n" +
		"expires.\n\n")
	for i, it := range items {
		fmt.Fprintf(&b, "%d. From: %s\n   Subject: %s\n   Received: %s\n   Size: %d bytes\n   Sender authentication: %s\n   Held because: %s\n   %s\n\n",
			i+1, Sender(it.From), Display(it.Subject), it.Received.Local().Format("2006-01-02 15:04"), it.Size, authText(it.Auth, "not checked"), Display(it.Reason), it.URL)
	}
	if more > 0 {
		fmt.Fprintf(&b, "and %d more\n\n", more)
	}
	b.WriteString("This message was sent automatically.\n")
	return b.String()
}
