package challenge_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/internal/challenge"
)

func TestHeaderFacts(t *testing.T) {
	const body = "\r\nAuto-Submitted: auto-replied\r\nPrecedence: bulk\r\nList-Id: <x.example.jp>\r\n"
	for _, tc := range []struct {
		name string
		msg  string
		want challenge.Header
	}{
		{"none", "From: a@example.jp\r\nSubject: hi\r\n" + body, challenge.Header{}},
		{"empty message", "", challenge.Header{}},
		{"body only", "\r\nAuto-Submitted: auto-replied\r\n", challenge.Header{}},
		{"auto-submitted no", "Auto-Submitted: no\r\n" + body, challenge.Header{AutoSubmitted: []string{"no"}}},
		{"auto-submitted upper case", "AUTO-SUBMITTED: Auto-Replied\r\n" + body, challenge.Header{AutoSubmitted: []string{"auto-replied"}}},
		{"auto-submitted comment and parameter", "Auto-Submitted: auto-replied (vacation); owner-email=\"a@b\"\r\n", challenge.Header{AutoSubmitted: []string{"auto-replied"}}},
		{"auto-submitted leading comment", "Auto-Submitted: (a (nested \\) comment)) auto-generated\r\n", challenge.Header{AutoSubmitted: []string{"auto-generated"}}},
		{"auto-submitted folded", "Subject: x\r\nAuto-Submitted:\r\n\tauto-replied\r\nTo: b@example.jp\r\n", challenge.Header{AutoSubmitted: []string{"auto-replied"}}},
		{"auto-submitted empty", "Auto-Submitted:\r\nTo: b@example.jp\r\n", challenge.Header{AutoSubmitted: []string{""}}},
		{"auto-submitted twice", "Auto-Submitted: no\r\nAuto-Submitted: auto-generated\r\n", challenge.Header{AutoSubmitted: []string{"no", "auto-generated"}}},
		{"space before colon", "Precedence : bulk\r\n", challenge.Header{Precedence: []string{"bulk"}}},
		{"precedence list", "precedence: LIST\r\n", challenge.Header{Precedence: []string{"list"}}},
		{"precedence junk", "Precedence:junk\r\n", challenge.Header{Precedence: []string{"junk"}}},
		{"list-id", "List-Id: Friends <friends.example.jp>\r\n", challenge.Header{ListID: true}},
		{"list-id empty", "List-ID:\r\n", challenge.Header{ListID: true}},
		{"similar names", "X-Auto-Submitted: yes\r\nList-Idx: a\r\nPrecedenceX: bulk\r\nList-Unsubscribe: <mailto:x@y>\r\n", challenge.Header{}},
		{"bare LF", "Subject: x\nAuto-Submitted: auto-generated\nPrecedence: bulk\n\nList-Id: x\n", challenge.Header{AutoSubmitted: []string{"auto-generated"}, Precedence: []string{"bulk"}}},
		{"no final newline", "List-Id: x", challenge.Header{ListID: true}},
		{"no empty line", "Precedence: bulk\r\n", challenge.Header{Precedence: []string{"bulk"}}},
		{"stops at a non-field line", "Subject: x\r\nthis is no header\r\nList-Id: x\r\n", challenge.Header{}},
		{"stops at a name with a space", "Subject: x\r\nBad Name: y\r\nList-Id: x\r\n", challenge.Header{}},
		{"stops at a line starting with a colon", "Subject: x\r\n: y\r\nList-Id: x\r\n", challenge.Header{}},
		{"continuation before any field", " folded\r\nList-Id: x\r\n", challenge.Header{ListID: true}},
		{"all", "Received: from x\r\n\tby y\r\nAuto-Submitted: auto-replied\r\nPrecedence: bulk\r\nList-Id: <l.example.jp>\r\n\r\nhello\r\n",
			challenge.Header{AutoSubmitted: []string{"auto-replied"}, Precedence: []string{"bulk"}, ListID: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := challenge.HeaderFacts([]byte(tc.msg))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("HeaderFacts(%q)\n got %#v\nwant %#v", tc.msg, got, tc.want)
			}
		})
	}
}

func TestHeaderFactsBounded(t *testing.T) {
	filler := "X-Filler: " + strings.Repeat("x", 990) + "\r\n" // 1002 bytes
	var b strings.Builder
	for b.Len() < challenge.MaxHeaderBytes-len(filler) {
		b.WriteString(filler)
	}
	within := b.String() + "List-Id: x\r\n"
	if len(within) > challenge.MaxHeaderBytes {
		t.Fatalf("test message too long: %d", len(within))
	}
	if got := challenge.HeaderFacts([]byte(within)); !got.ListID {
		t.Errorf("List-Id within MaxHeaderBytes not seen")
	}
	beyond := b.String() + filler + "List-Id: x\r\n\r\n"
	if got := challenge.HeaderFacts([]byte(beyond)); got.ListID {
		t.Errorf("List-Id beyond MaxHeaderBytes seen")
	}
}

func BenchmarkHeaderFacts(b *testing.B) {
	msg := []byte("Received: from mail.example.com (mail.example.com [192.0.2.1])\r\n\tby mx.example.jp with ESMTPS\r\n" +
		"From: a@example.com\r\nTo: b@example.jp\r\nSubject: hello\r\nDate: Fri, 01 May 2026 09:00:00 +0900\r\n" +
		"Message-ID: <x@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n" + strings.Repeat("body\r\n", 10000))
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		challenge.HeaderFacts(msg)
	}
}
