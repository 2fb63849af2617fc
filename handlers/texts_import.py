"""User-visible text of Excel import and export (SPEC §9)."""

from __future__ import annotations

IMPORT_SEND_FILE = "请发送要导入的客户表(.xlsx / .xls / .csv,{mb}MB 以内)。必须有「客户名称」列;回复“取消”可放弃。"
IMPORT_CANCELLED = "已取消导入。"
IMPORT_NO_FILE = "没有收到文件,请重新发送 /导入 后再发文件。"
IMPORT_DONE = "导入完成({source}):新建 {created} 位客户,更新 {updated} 位,{unchanged} 位无变化。"
IMPORT_DRY_RUN = "预检通过({source}):将新建 {created} 位客户,更新 {updated} 位,{unchanged} 位无变化。未做任何修改。"
IMPORT_FAILED = "导入失败,没有做任何修改:共 {count} 行有问题。"
IMPORT_FAILED_MORE = "……另有 {more} 条,完整清单见附件。"
IMPORT_ERRORS_FILE = "导入问题清单.xlsx"
IMPORT_ERROR_LINE = "第 {row} 行:{reason}"

REJECTIONS = {
    "no_name_column": "导入失败,没有做任何修改:前 {detail} 行里找不到「客户名称」列(也可写作 客户 / 公司名称 / 客户名)。",
    "duplicate_column": "导入失败,没有做任何修改:表头「{detail}」出现了两次。",
    "too_large": "导入失败,没有做任何修改:文件太大(上限 20MB)。请拆分后分批导入。",
    "macro": "导入失败,没有做任何修改:不接受含宏的文件(.{detail})。请另存为 .xlsx 后再发。",
    "unsupported_type": "导入失败,没有做任何修改:不支持 .{detail} 文件,请发送 .xlsx、.xls 或 .csv。",
    "unreadable": "导入失败,没有做任何修改:无法读取这个文件,它不是有效的 Excel 表格。",
    "empty_file": "导入失败,没有做任何修改:文件是空的。",
    "no_rows": "导入失败,没有做任何修改:表格里没有客户数据。",
    "too_many_rows": "导入失败,没有做任何修改:一次最多导入 200000 行,这个文件有 {detail} 行。",
}

ROW_REASONS = {
    "no_name": "缺少客户名称",
    "name_too_long": "客户名称过长({detail}…)",
    "unknown_owner": "负责人「{detail}」不存在(请填成员编码或姓名)",
    "no_owner": "没有负责人:新客户需要填写负责人",
    "ambiguous_customer": "「{detail}」对应多位负责人的客户,请加「负责人」列",
    "duplicate": "与第 {detail} 行是同一个客户",
    "unknown_stage": "阶段「{detail}」不在该负责人的销售流程中",
    "bad_date_last_touch": "最近跟进日期「{detail}」无法识别",
    "bad_date_expected_sign": "预计签约时间「{detail}」无法识别",
    "future_last_touch": "最近跟进日期 {detail} 在未来",
}

EXPORT_DONE = "导出完成:客户 {customers} 位,跟进记录 {touches} 条,预警 {alerts} 条,资源申请 {requests} 条。"
EXPORT_TEAM_NOTE = "(范围:{team})"
EXPORT_TOO_LARGE = "导出文件超过了聊天可发送的大小,请管理员在服务器上运行 pacebot export --out 文件.xlsx。"
EXPORT_NO_TEAM = "您不属于任何团队,没有可导出的客户。"
EXPORT_FILENAME = "pacebot导出-{date}.xlsx"
