package admin

import "github.com/sekisho/sekisho/internal/webui"

// texts are the admin pages' words in both languages.
var texts = webui.Catalog{
	webui.Ja: {
		"adm_overview": "概要", "adm_users": "ユーザー", "adm_lists": "リスト", "adm_held": "保留メール",
		"adm_nodes": "ノード", "adm_traps": "収集トラップ", "adm_tokens": "APIトークン", "adm_nav": "管理メニュー",

		"list_alias": "ALIAS（エイリアス）", "list_white": "WHITE（許可）", "list_decoy": "DECOY（おとり）",
		"list_black": "BLACK（拒否）", "list_audir": "AUDIR（確認待ち）", "list_relay": "RELAY（通過履歴）",

		"ov_title": "管理：概要", "ov_counters": "現在の値", "ov_held": "保留メール（通）", "ov_held_bytes": "保留メールの容量",
		"ov_outbox": "送信待ち（アウトボックス）", "ov_nodes": "ノード数", "ov_charts": "判定の推移",
		"ov_range": "期間", "ov_range_hour": "1時間", "ov_range_day": "1日", "ov_range_week": "1週間",
		"ov_chart_hour": "直近1時間の判定（1分ごと）", "ov_chart_day": "直近1日の判定（15分ごと）",
		"ov_chart_week": "直近1週間の判定（2時間ごと）", "ov_chart_desc": "判定ごとの件数の積み上げ棒グラフ。合計：",
		"ov_totals": "期間中の合計", "ov_decision": "判定", "ov_count": "件数",
		"dec_pass": "通過", "dec_held": "保留", "dec_confirmed": "確認済み", "dec_decoy": "おとり命中",
		"dec_relay_refused": "中継拒否", "dec_proxy_refused": "プロキシ拒否",

		"users_title": "管理：ユーザー", "users_address": "メールアドレス", "users_password": "パスワード",
		"users_newpassword": "新しいパスワード", "users_admin": "管理者", "users_created": "作成日時",
		"users_create": "ユーザーを作成", "users_reset": "パスワード再設定", "users_make_admin": "管理者にする",
		"users_drop_admin": "管理者から外す", "users_delete": "削除", "users_you": "（あなた）",
		"users_pw_hint": "10文字以上。再設定するとそのユーザーのログインはすべて終了します。",

		"lists_title": "管理：リスト", "lists_search": "検索", "lists_add": "追加", "lists_add_title": "エントリを追加",
		"col_entry": "エントリ", "col_kind": "種類", "col_owner": "所有者", "col_target": "転送先", "col_note": "メモ",
		"col_source": "登録元", "col_expires": "期限", "col_hits": "使用回数", "col_lasthit": "最終使用",
		"col_actions": "操作", "lists_ttl": "有効期間", "lists_ttl_hint": "例：24h、7d。空欄は無期限",
		"lists_audir_note": "AUDIR のエントリは確認手順が作ります。ここでは表示と削除のみです。",
		"disabled":         "無効", "expired": "期限切れ", "delete": "削除", "prev": "← 前へ", "next": "次へ →",
		"none": "ありません。", "yes": "はい", "no": "いいえ", "global": "（全体）",

		"held_title": "管理：保留メール", "held_filter": "送信者で絞り込み", "held_filter_button": "絞り込む",
		"held_received": "受信日時", "held_from": "送信者", "held_subject": "件名", "held_rcpts": "宛先（所有者）",
		"held_size": "サイズ", "held_client": "送信元IP", "held_expires": "保留期限", "held_view": "ヘッダーを見る",
		"held_release": "配送する", "held_delete": "削除", "held_headers": "ヘッダー",
		"held_cut": "ヘッダーが長いため途中までを表示しています。", "held_back": "保留メール一覧へ",

		"nodes_title": "管理：クラスタのノード", "nodes_id": "ノードID", "nodes_version": "バージョン",
		"nodes_started": "起動", "nodes_heartbeat": "最終ハートビート", "nodes_counters": "カウンタ",
		"nodes_stale": "応答なし", "nodes_ok": "稼働中", "nodes_state": "状態", "nodes_ago": "秒前",
		"nodes_none": "登録されたノードはありません。", "nodes_noregistry": "このストアはノードを記録していません。",
		"nodes_interval": "ハートビート間隔", "nodes_stale_hint": "間隔の3倍を超えて応答のないノードに印を付けます。",

		"traps_title": "管理：収集トラップ", "traps_visit": "アドレスを収集した訪問", "traps_spam": "その後のスパム",
		"traps_address": "トラップアドレス", "traps_ip": "IP", "traps_ua": "User-Agent", "traps_url": "URL",
		"traps_time": "日時", "traps_sender": "送信者",
		"traps_none": "トラップアドレスに届いたメールはまだありません。",

		"tokens_title": "管理：APIトークン", "tokens_name": "名前", "tokens_owner": "所有者",
		"tokens_owner_admin": "（管理者権限）", "tokens_owner_hint": "空欄：管理者権限。ユーザーを選ぶとそのユーザーの権限だけ。",
		"tokens_created": "作成日時", "tokens_lastused": "最終使用", "tokens_create": "トークンを作成",
		"tokens_new": "新しいトークン", "tokens_once": "このトークンは今回だけ表示されます。今すぐ控えてください。",

		"ok_user_created": "ユーザーを作成しました。", "ok_password_reset": "パスワードを再設定し、ログインを終了させました。",
		"ok_admin_set": "管理者フラグを変更しました。", "ok_user_deleted": "ユーザーを削除しました。",
		"ok_entry_added": "エントリを追加しました。", "ok_entry_deleted": "エントリを削除しました。",
		"ok_released": "保留メールを配送しました。", "ok_held_deleted": "保留メールを削除しました。",
		"ok_token_created": "トークンを作成しました。", "ok_token_deleted": "トークンを削除しました。",

		"err_notfound": "見つかりません。", "err_internal": "一時的なエラーです。後でもう一度お試しください。",
		"err_address": "メールアドレスが正しくありません。", "err_password": "パスワードは10文字以上にしてください。",
		"err_user_exists": "そのユーザーはすでにあります。", "err_self": "自分自身には実行できません。",
		"err_entry": "エントリが正しくありません：", "err_audir": "AUDIR のエントリはここでは追加できません。",
		"err_release":    "配送できませんでした。上流サーバーが受け付けませんでした。後でもう一度お試しください。",
		"err_token_name": "名前は英数字と . _ - で64文字以内にしてください。", "err_no_user": "そのユーザーはいません。",
		"err_token_exists": "同じ名前のトークンがすでにあります。",
	},
	webui.En: {
		"adm_overview": "Overview", "adm_users": "Users", "adm_lists": "Lists", "adm_held": "Held mail",
		"adm_nodes": "Nodes", "adm_traps": "Harvest traps", "adm_tokens": "API tokens", "adm_nav": "Administration",

		"list_alias": "ALIAS", "list_white": "WHITE", "list_decoy": "DECOY",
		"list_black": "BLACK", "list_audir": "AUDIR", "list_relay": "RELAY",

		"ov_title": "Admin: overview", "ov_counters": "Now", "ov_held": "Held messages", "ov_held_bytes": "Held mail size",
		"ov_outbox": "Outbox depth", "ov_nodes": "Nodes", "ov_charts": "Decisions over time",
		"ov_range": "Range", "ov_range_hour": "1 hour", "ov_range_day": "1 day", "ov_range_week": "1 week",
		"ov_chart_hour": "Decisions in the last hour (per minute)", "ov_chart_day": "Decisions in the last day (per 15 minutes)",
		"ov_chart_week": "Decisions in the last week (per 2 hours)", "ov_chart_desc": "Stacked bars of counts per decision. Totals:",
		"ov_totals": "Totals in this range", "ov_decision": "Decision", "ov_count": "Count",
		"dec_pass": "pass", "dec_held": "held", "dec_confirmed": "confirmed", "dec_decoy": "decoy hits",
		"dec_relay_refused": "relay refused", "dec_proxy_refused": "proxy refused",

		"users_title": "Admin: users", "users_address": "Mail address", "users_password": "Password",
		"users_newpassword": "New password", "users_admin": "Admin", "users_created": "Created",
		"users_create": "Create user", "users_reset": "Reset password", "users_make_admin": "Make admin",
		"users_drop_admin": "Remove admin", "users_delete": "Delete", "users_you": "(you)",
		"users_pw_hint": "At least 10 characters. A reset ends every session of that user.",

		"lists_title": "Admin: lists", "lists_search": "Search", "lists_add": "Add", "lists_add_title": "Add an entry",
		"col_entry": "Entry", "col_kind": "Kind", "col_owner": "Owner", "col_target": "Target", "col_note": "Note",
		"col_source": "Source", "col_expires": "Expires", "col_hits": "Hits", "col_lasthit": "Last hit",
		"col_actions": "Actions", "lists_ttl": "Expires after", "lists_ttl_hint": "e.g. 24h or 7d; empty: never",
		"lists_audir_note": "AUDIR entries are made by the confirmation step; here they can only be seen and deleted.",
		"disabled":         "disabled", "expired": "expired", "delete": "Delete", "prev": "← Previous", "next": "Next →",
		"none": "None.", "yes": "yes", "no": "no", "global": "(global)",

		"held_title": "Admin: held mail", "held_filter": "Filter by sender", "held_filter_button": "Filter",
		"held_received": "Received", "held_from": "Sender", "held_subject": "Subject", "held_rcpts": "Recipients (owner)",
		"held_size": "Size", "held_client": "Client IP", "held_expires": "Held until", "held_view": "Headers",
		"held_release": "Release", "held_delete": "Delete", "held_headers": "Header section",
		"held_cut": "The header section is long; only its start is shown.", "held_back": "Back to held mail",

		"nodes_title": "Admin: cluster nodes", "nodes_id": "Node ID", "nodes_version": "Version",
		"nodes_started": "Started", "nodes_heartbeat": "Last heartbeat", "nodes_counters": "Counters",
		"nodes_stale": "silent", "nodes_ok": "up", "nodes_state": "State", "nodes_ago": "s ago",
		"nodes_none": "No node is registered.", "nodes_noregistry": "This store keeps no node registry.",
		"nodes_interval": "Heartbeat interval", "nodes_stale_hint": "Nodes silent for more than three intervals are flagged.",

		"traps_title": "Admin: harvest traps", "traps_visit": "The visit that harvested the address", "traps_spam": "The spam that followed",
		"traps_address": "Trap address", "traps_ip": "IP", "traps_ua": "User-Agent", "traps_url": "URL",
		"traps_time": "Time", "traps_sender": "Sender",
		"traps_none": "No mail has arrived at a trap address yet.",

		"tokens_title": "Admin: API tokens", "tokens_name": "Name", "tokens_owner": "Owner",
		"tokens_owner_admin": "(admin rights)", "tokens_owner_hint": "Empty: admin rights. A user: that user's rights only.",
		"tokens_created": "Created", "tokens_lastused": "Last used", "tokens_create": "Create token",
		"tokens_new": "New token", "tokens_once": "This token is shown only this once. Copy it now.",

		"ok_user_created": "User created.", "ok_password_reset": "Password reset; the user's sessions ended.",
		"ok_admin_set": "Admin flag changed.", "ok_user_deleted": "User deleted.",
		"ok_entry_added": "Entry added.", "ok_entry_deleted": "Entry deleted.",
		"ok_released": "Held message released.", "ok_held_deleted": "Held message deleted.",
		"ok_token_created": "Token created.", "ok_token_deleted": "Token deleted.",

		"err_notfound": "Not found.", "err_internal": "A temporary error occurred. Please try again later.",
		"err_address": "That is not a valid mail address.", "err_password": "The password needs at least 10 characters.",
		"err_user_exists": "That user exists already.", "err_self": "You cannot do that to yourself.",
		"err_entry": "Invalid entry:", "err_audir": "AUDIR entries cannot be added here.",
		"err_release":    "Could not release: the upstream server did not accept the message. Please try again later.",
		"err_token_name": "A name is up to 64 letters, digits, '.', '_' or '-'.", "err_no_user": "No such user.",
		"err_token_exists": "A token with that name exists already.",
	},
}
