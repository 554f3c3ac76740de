// Package challenge holds the parts of sekisho's URL-click confirmation (SPEC §4) that need
// no network: AUDIR tokens, the decision whether a held message may cause a challenge mail,
// the caps on how many it may cause, and the composition of the challenge mail itself.
//
// A challenge is a mail sekisho sends to a stranger, so every rule here errs towards not
// sending it: a forged sender must never turn sekisho into a source of backscatter, and the
// challenge must never carry anything a spammer wrote. Compose therefore takes no part of the
// held message at all, and Decide suppresses a challenge on every sign of automated mail.
//
// Standards: RFC 5322 (message format), RFC 2045 and RFC 2047 (MIME, encoded words),
// RFC 3834 (Auto-Submitted, responses to automatic mail), RFC 2369 and RFC 2919 (List-*
// headers), RFC 4648 §5 (base64url).
package challenge
