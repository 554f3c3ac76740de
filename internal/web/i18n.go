package web

import (
	"net/http"

	"github.com/sekisho/sekisho/internal/webui"
)

// Lang is a page language.
type Lang = webui.Lang

// The languages of the pages.
const (
	Ja = webui.Ja
	En = webui.En
)

// pickLang chooses the language of a page (see webui.PickLang: ?lang=, the remembered
// choice, Accept-Language).
func pickLang(r *http.Request) Lang { return webui.PickLang(r) }

// text is the message catalogue of the confirmation and digest pages (d_: digest).
var text = map[Lang]map[string]string{
	Ja: {
		"title":        "メール送信の確認",
		"intro":        "次の宛先へのあなたのメールが、送信者の確認を待っています。",
		"waiting":      "保留中のメール",
		"since":        "最初の保留",
		"recipients":   "宛先",
		"button":       "人間です。メールを届けてください",
		"why":          "このページはスパム対策のためのものです。ボタンを押すと、あなたのアドレスからのメールは今後そのまま届きます。",
		"again":        "確認できませんでした。もう一度ボタンを押してください。",
		"done":         "ありがとうございました。メールを配送しました。",
		"delivered":    "配送したメール",
		"left":         "配送できずに保留中のメール（自動で再試行します）",
		"notfound":     "このリンクは無効です。",
		"expired":      "このリンクは有効期限が切れています。",
		"nothing":      "保留中のメールはありません。",
		"otherlang":    "English",
		"otherlangurl": "en",

		"d_title":       "保留中のメール",
		"d_intro":       "次のメールは、あなた宛てに届き、保留されています。",
		"d_from":        "差出人",
		"d_subject":     "件名",
		"d_received":    "受信日時",
		"d_size":        "サイズ（バイト）",
		"d_rcpt":        "宛先",
		"d_reason":      "保留の理由",
		"d_auth":        "送信者認証",
		"d_auth_none":   "未確認",
		"d_release":     "配送する",
		"d_whitelist":   "配送し、この差出人を許可する",
		"d_delete":      "削除する",
		"d_why":         "ボタンはこのメールのこの宛先だけに働きます。「許可する」と、この差出人からのメールは今後そのまま届きます。",
		"d_again":       "処理できませんでした。もう一度ボタンを押してください。",
		"d_released":    "メールを配送しました。",
		"d_whitelisted": "メールを配送し、差出人を許可リストに加えました。",
		"d_deleted":     "メールを削除しました。",
		"d_failed":      "いま配送できませんでした。メールは保留したままです。しばらくしてからもう一度お試しください。",
		"d_notfound":    "このリンクは無効です。",
		"d_gone":        "このメールはもう保留されていません（配送済み、削除済み、または期限切れ）。",
	},
	En: {
		"title":        "Please confirm your message",
		"intro":        "Your mail to the recipients below is waiting for you to confirm that you sent it.",
		"waiting":      "Messages waiting",
		"since":        "Waiting since",
		"recipients":   "Recipients",
		"button":       "I am a person: deliver my mail",
		"why":          "This page protects against spam. Once you press the button, your mail from this address is delivered directly from now on.",
		"again":        "That did not work. Please press the button again.",
		"done":         "Thank you. Your mail has been delivered.",
		"delivered":    "Messages delivered",
		"left":         "Messages still waiting (retried automatically)",
		"notfound":     "This link is not valid.",
		"expired":      "This link has expired.",
		"nothing":      "No message is waiting.",
		"otherlang":    "日本語",
		"otherlangurl": "ja",

		"d_title":       "Held mail",
		"d_intro":       "This message to you is being held.",
		"d_from":        "From",
		"d_subject":     "Subject",
		"d_received":    "Received",
		"d_size":        "Size (bytes)",
		"d_rcpt":        "Recipient",
		"d_reason":      "Held because",
		"d_auth":        "Sender authentication",
		"d_auth_none":   "not checked",
		"d_release":     "Deliver",
		"d_whitelist":   "Deliver and allow this sender",
		"d_delete":      "Delete",
		"d_why":         "The buttons act on this message for this recipient only. Once you allow the sender, their mail is delivered directly from now on.",
		"d_again":       "That did not work. Please press the button again.",
		"d_released":    "The message has been delivered.",
		"d_whitelisted": "The message has been delivered and the sender allowed.",
		"d_deleted":     "The message has been deleted.",
		"d_failed":      "The message could not be delivered now and stays held. Please try again later.",
		"d_notfound":    "This link is not valid.",
		"d_gone":        "This message is no longer held (delivered, deleted or expired).",
	},
}
