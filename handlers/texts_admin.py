"""User-visible text of the admin surface: /成员, /规则 设置, libraries, and the customer directory."""

from __future__ import annotations

ROLE_NAMES = {"rep": "销售", "manager": "主管", "supporter": "支持", "admin": "管理员"}
ROLE_WORDS = {"销售": "rep", "主管": "manager", "支持": "supporter", "管理员": "admin",
              "rep": "rep", "manager": "manager", "supporter": "supporter", "admin": "admin"}

MEMBERS_TITLE = "👥 成员({count} 人)"
MEMBERS_TEAM = "**{team}**"
MEMBERS_NO_TEAM = "**未分组**"
MEMBERS_LINE = "· {code} {name}({role}){customers}"
MEMBERS_CUSTOMERS = " · {count} 位客户"
MEMBERS_USAGE = (
    "用法:\n"
    "/成员 (列出成员)\n"
    "/成员 角色 rep.li 主管 (设角色:销售/主管/支持/管理员)\n"
    "/成员 调组 rep.li south (调到另一个团队,写团队编码或名称)\n"
    "/成员 转交 rep.li rep.zhao (把 rep.li 的全部客户连同阶段和历史转给 rep.zhao)"
)
MEMBER_UNKNOWN = "找不到成员「{code}」(请写成员编码,例如 rep.li)。"
TEAM_UNKNOWN = "找不到团队「{team}」。"
ROLE_UNKNOWN = "不认识的角色「{role}」,可选:销售、主管、支持、管理员。"
ROLE_SET = "已将 {name}({code})的角色从{before}改为{after}。"
ROLE_SAME = "{name}({code})已经是{role}。"
ROLE_LAST_ADMIN = "{name} 是唯一的管理员,不能改为其他角色。"
TEAM_MOVED = "已将 {name}({code})从「{before}」调到「{after}」。"
TEAM_SAME = "{name}({code})已经在「{team}」。"
TRANSFER_SAME = "转出和转入不能是同一个人。"
TRANSFER_ROLE = "不能转交:{source}是{source_role},{target}是{target_role}。客户只能转给同一角色的成员。"
TRANSFER_NOT_OWNER_ROLE = "不能转交:{name}是{role},只有销售或主管名下有客户。"
TRANSFER_INACTIVE = "不能转交:{name} 已停用。"
TRANSFER_NOTHING = "{name}({code})名下没有客户,无需转交。"
TRANSFER_CLASH = "不能转交:{target} 已有同名客户:{names}。请先处理这些客户。"
TRANSFER_DONE = "已将 {source} 的 {count} 位客户转交给 {target},阶段与全部历史保留。"
TRANSFER_TO_SOURCE = "📦 管理员已将您名下的 {count} 位客户转交给 {target}。"
TRANSFER_TO_TARGET = "📦 管理员已将 {source} 的 {count} 位客户转交给您,阶段与历史均已保留。用 /客户 客户名 查看。"
TRANSFER_TO_MANAGER = "📦 {source} 的 {count} 位客户已转交给 {target}。"

RULE_SET_USAGE = "用法:/规则 设置 名称 值,例如 /规则 设置 冷却小时 48。可设置:\n{lines}"
RULE_SET_LINE = "· {label}:{value}{unit}{changed}"
RULE_CHANGED_BY = "({name} 于 {at} 修改)"
RULE_SET_DONE = "已将「{label}」从 {before} 改为 {after}{unit}。已记录修改人和时间。"
RULE_SET_SAME = "「{label}」已经是 {value}{unit},没有修改。"
RULE_ERRORS = {
    "unknown_setting": "没有名为「{value}」的规则。",
    "not_a_number": "「{label}」需要一个整数,「{value}」不是。没有做任何修改。",
    "out_of_range": "「{label}」只能在 {low}–{high}{unit} 之间,「{value}」不合理。没有做任何修改。",
    "empty": "请写上「{label}」的新值。",
    "unknown_stage": "「{value}」不是任何销售流程里的阶段。没有做任何修改。",
}
RATIO_RANGE = "「{label}」只能在 1%–100% 之间,「{value}」不合理。没有做任何修改。"


CLASH_TO_REP = "⚠️「{name}」已是 {owner} 的客户(撞单)。没有新建客户,已请主管 {manager} 决定归属。"
CLASH_NO_MANAGER = "管理员"
CLASH_TITLE = "撞单待决定:{name}"
CLASH_BODY = "{rep} 想新建客户「{name}」,但它已是 {owner} 的客户(阶段:{stage})。请决定归属。"
CLASH_GIVE = "转给{rep}"
CLASH_KEEP = "维持{owner}"
CLASH_GIVEN_REP = "✅ 主管已决定:「{name}」转给您跟进,阶段与历史保留。"
CLASH_GIVEN_OWNER = "📦 主管已决定:「{name}」转给 {rep} 跟进。"
CLASH_KEPT_REP = "主管已决定:「{name}」仍由 {owner} 跟进。"
CLASH_DONE_GIVE = "已转给{rep}"
CLASH_DONE_KEEP = "维持{owner}"
CLASH_NOT_YOURS = "只有该客户所在团队的主管或管理员可以决定。"
CLASH_GONE = "这位客户已不存在或已换了负责人,无需再决定。"
CLASH_NAME_TAKEN = "{rep} 已有同名客户,无法转给他。"

CUSTOMER_ALIAS_ADDED = "已为「{name}」添加别名:{values}。现有别名:{all}"
CUSTOMER_CONTACT_ADDED = "已为「{name}」添加联系人 {contact}{phone}。现有联系人:{all}"
CUSTOMER_EDIT_USAGE = "用法:/客户 华东建材 别名 华东 或 /客户 华东建材 联系人 张总 13800000000"
CUSTOMER_EDIT_NOT_OWNER = "「{name}」不是您负责的客户,只有负责人可以修改别名和联系人。"
CUSTOMER_ALIAS_TAKEN = "别名「{alias}」已是您另一位客户「{other}」的名称或别名。"
CUSTOMER_CUSTOM_HEADER = "**其他信息**"
CUSTOMER_CUSTOM_LINE = "· {key}:{value}"
PHONE_FIELD = "联系电话"

# --- libraries: /话术 /应答库 /竞品库 (admins) ---
LIBRARY_NAMES = {"pack": "话术包", "response": "常见障碍应答", "competitor": "竞品"}
LIBRARY_COMMANDS = {"pack": "/话术", "response": "/应答库", "competitor": "/竞品库"}
LIBRARY_TITLE = "📚 {library}({count} 条,停用 {retired} 条)"
LIBRARY_LINE = "· {key}{retired} — {text}"
LIBRARY_RETIRED_MARK = "(已停用)"
LIBRARY_USAGE = (
    "用法(管理员):\n"
    "{command} 列表\n"
    "{command} 新增 {key_name} 内容\n"
    "{command} 修改 {key_name} 新内容\n"
    "{command} 停用 {key_name} / {command} 启用 {key_name}"
)
LIBRARY_ALIAS_USAGE = "\n/竞品库 别名 名称 别名1、别名2"
LIBRARY_KEY_NAMES = {"pack": "标题", "response": "障碍", "competitor": "名称"}
LIBRARY_ADDED = "已新增{library}「{key}」。"
LIBRARY_EDITED = "已修改{library}「{key}」。以后升级不会覆盖您的修改。"
LIBRARY_RETIRED = "已停用{library}「{key}」,不再推送或匹配;可用“启用”恢复。"
LIBRARY_RESTORED = "已重新启用{library}「{key}」。"
LIBRARY_ALIASES_SET = "已设置竞品「{key}」的别名:{aliases}。"
LIBRARY_EXISTS = "{library}「{key}」已存在,请用“修改”。"
LIBRARY_MISSING = "没有名为「{key}」的{library}。"
LIBRARY_NEEDS_TEXT = "请写上内容,例如:{command} {action} {key} 这里写内容"
LIBRARY_TOO_LONG = "内容过长(最多 {limit} 字)。"
LIBRARY_NOT_ADMIN = "只有管理员可以修改{library}库。"
