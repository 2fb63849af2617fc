"""What people read about resource requests (资源申请), in one place."""

from __future__ import annotations

USAGE = (
    "用法:/申请 类型 [金额] 客户 用途,例如:\n"
    "/申请 市场费用 5000 华东建材 用于推动临床试用\n"
    "/申请 技术支持 华东建材 需要工程师现场测试\n"
    "可申请的类型:{types}"
)
UNKNOWN_KIND = "没有识别到申请类型。可申请的类型:{types}。例如:/申请 市场费用 5000 华东建材 用于推动临床试用"
AMOUNT_REQUIRED = "{kind}需要写明金额,例如:/申请 {kind} 5000 {customer} 用于推动临床试用"
AMOUNT_INVALID = "金额需大于0且不超过{limit}元,请检查后重新申请。"
NO_CUSTOMER = "请写明为哪个客户申请,例如:/申请 {kind} 华东建材 用于推动临床试用"
NOT_YOUR_CUSTOMER = "您名下没有「{name}」,只能为自己负责的客户申请资源。"
AMBIGUOUS_CUSTOMER = "「{name}」对应多个客户:{names},请写全客户名称。"
NO_PURPOSE = "请写明用途,例如:/申请 {kind} {amount}{customer} 用于推动临床试用"
MISSING_NONE = (
    "「{customer}」当前阶段「{stage}」还没有带凭证的有效触达(需要至少{need}次)。"
    "请先记录一次有效触达并上传凭证,再申请。"
)
MISSING_SOME = (
    "「{customer}」当前阶段「{stage}」只有{have}次带凭证的有效触达(需要至少{need}次)。"
    "请再记录{more}次有效触达并上传凭证,再申请。"
)
MISSING_PENDING_HINT = "(本阶段有{count}条跟进还在等凭证,补上凭证后可能就满足了。)"
DUPLICATE = "「{customer}」已有一笔待审批的{kind}申请({details}),请等待{approver}处理,不要重复提交。"
DUPLICATE_DETAILS = "{date}提交,用途:{purpose}"
NO_APPROVER = "没有找到可以审批的主管或管理员,申请未提交,请联系管理员。"
SUBMITTED = "已提交「{customer}」的{kind}申请{amount},当前阶段「{stage}」,附{count}项凭证,等待{approver}审批。"
AMOUNT = "({amount}元)"
LIST_SEPARATOR = "、"
LIST_COMMA = ","
SOMEONE_APPROVER = "主管"

CARD_TITLE = "资源申请 · {customer}"
CARD_BODY = "{rep}申请{kind}{amount},用途:{purpose}"
FIELD_REP = "申请人"
FIELD_CUSTOMER = "客户"
FIELD_STAGE = "当前阶段"
FIELD_KIND = "类型"
FIELD_AMOUNT = "金额"
FIELD_PURPOSE = "用途"
FIELD_EVIDENCE = "凭证"
AMOUNT_VALUE = "{amount}元"
NO_AMOUNT = "—"
EVIDENCE_LINE = "{kind} · {date} · {filename}"
BUTTON_APPROVE = "批准"
BUTTON_REJECT = "驳回"

APPROVED_TO_REP = "您为「{customer}」申请的{kind}{amount}已获{manager}批准。"
APPROVED_DONE = "已批准,已通知{rep}。"
CLOSED_APPROVED = "已批准"
ASK_REJECT_REASON = "请回复驳回原因,会转告{rep}。例如:本阶段先做技术验证,费用下阶段再申请。(回复“取消”可放弃)"
REASON_EMPTY = "驳回原因不能为空,请回复原因。(回复“取消”可放弃)"
REASON_TOO_LONG = "原因太长了({length}字),请控制在{limit}字以内。"
REJECTED_TO_REP = "您为「{customer}」申请的{kind}{amount}被{manager}驳回,原因:{reason}"
REJECTED_DONE = "已驳回,已将原因告知{rep}。"
CLOSED_REJECTED = "已驳回:{reason}"
DIALOGUE_CANCELLED = "已取消,审批卡片仍可继续操作。"

REQUEST_GONE = "找不到这笔申请。"
ALREADY_DECIDED = "这笔申请已经处理过了({status}),无需重复操作。"
STATUS_NAMES = {"pending": "待审批", "approved": "已批准", "rejected": "已驳回"}
NOT_PERMITTED = "只有申请人所在团队的主管或管理员可以审批这笔申请。"
NOT_PERMITTED_OWN = "不能审批自己提交的申请,需由您的主管或其他管理员审批。"

# --- /帮助: what the command list says -------------------------------------------------------
CMD_APPLY = "申请市场费用、技术支持等资源"
CMD_APPLY_USAGE = "类型 [金额] 客户 用途"
