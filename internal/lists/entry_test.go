package lists_test

import (
	"errors"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/lists"
	"github.com/sekisho/sekisho/internal/store"
)

func TestParseEntry(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   lists.EntryInput
		want store.Entry
		bad  string // the field a *FieldError names
	}{
		{"white defaults to from", lists.EntryInput{List: store.White, Entry: "A@B.test"}, store.Entry{List: store.White, Key: "a@b.test", Kind: store.KindFrom}, ""},
		{"white domain", lists.EntryInput{List: store.White, Entry: "@Partner.TEST", Kind: "to", Owner: "Taro@example.jp"}, store.Entry{List: store.White, Key: "@partner.test", Kind: store.KindTo, Owner: "taro@example.jp"}, ""},
		{"white bad kind", lists.EntryInput{List: store.White, Entry: "a@b.test", Kind: "up"}, store.Entry{}, "kind"},
		{"white bad domain", lists.EntryInput{List: store.White, Entry: "@-x-"}, store.Entry{}, "entry"},
		{"relay pair by its comma", lists.EntryInput{List: store.Relay, Entry: "S@a.test, R@example.jp"}, store.Entry{List: store.Relay, Key: "s@a.test r@example.jp", Kind: store.KindPair}, ""},
		{"relay sender", lists.EntryInput{List: store.Relay, Entry: "S@a.test"}, store.Entry{List: store.Relay, Key: "s@a.test", Kind: store.KindSender}, ""},
		{"relay msgid", lists.EntryInput{List: store.Relay, Entry: "<x@y>", Kind: "msgid"}, store.Entry{List: store.Relay, Key: "<x@y>", Kind: store.KindMsgID}, ""},
		{"relay bad pair", lists.EntryInput{List: store.Relay, Entry: "a@b.test,", Kind: "pair"}, store.Entry{}, "entry"},
		{"black CIDR masked, ttl", lists.EntryInput{List: store.Black, Entry: "192.0.2.9/24", TTL: time.Hour}, store.Entry{List: store.Black, Key: "192.0.2.0/24", Source: "admin", Note: "added by hand", Expires: now.Add(time.Hour)}, ""},
		{"black mapped IPv4", lists.EntryInput{List: store.Black, Entry: "::ffff:192.0.2.1", Note: "why"}, store.Entry{List: store.Black, Key: "192.0.2.1", Source: "admin", Note: "why"}, ""},
		{"black kind", lists.EntryInput{List: store.Black, Entry: "192.0.2.1", Kind: "from"}, store.Entry{}, "kind"},
		{"negative ttl", lists.EntryInput{List: store.Decoy, Entry: "x@example.jp", TTL: -time.Second}, store.Entry{}, "ttl"},
		{"alias target is the owner", lists.EntryInput{List: store.Alias, Entry: "Shop@example.jp", Owner: "taro@example.jp"}, store.Entry{List: store.Alias, Key: "shop@example.jp", Owner: "taro@example.jp", Target: "taro@example.jp"}, ""},
		{"alias owner is the target", lists.EntryInput{List: store.Alias, Entry: "shop@example.jp", Target: "Box@example.jp"}, store.Entry{List: store.Alias, Key: "shop@example.jp", Owner: "box@example.jp", Target: "box@example.jp"}, ""},
		{"alias for nobody", lists.EntryInput{List: store.Alias, Entry: "shop@example.jp"}, store.Entry{}, "owner"},
		{"decoy source route", lists.EntryInput{List: store.Decoy, Entry: "@r.test:u@example.jp"}, store.Entry{}, "entry"},
		{"bad owner", lists.EntryInput{List: store.White, Entry: "a@b.test", Owner: "nobody"}, store.Entry{}, "owner"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := lists.ParseEntry(tt.in, now)
			if tt.bad != "" {
				var fe *lists.FieldError
				if !errors.As(err, &fe) || fe.Field != tt.bad {
					t.Fatalf("ParseEntry(%+v) = %v; want a FieldError on %s", tt.in, err, tt.bad)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseEntry(%+v)\n got %+v, %v\nwant %+v", tt.in, got, err, tt.want)
			}
		})
	}
}
