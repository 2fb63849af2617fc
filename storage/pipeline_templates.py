"""The pipelines Pacebot ships (销售流程模板). Admins can add their own in the same shape.

Each stage: name, time limit in days (``working`` = count Chinese working days), required
deliverables (evidence kinds), and what to do when overdue. ``crossing`` names the two stages
whose 阶段穿越率 (stage-crossing rate) the pipeline measures: from the first, reaching the second
or any later stage within 7 days; a pipeline without it has no crossing figure.
"""

from __future__ import annotations

from typing import Any

DEFAULT_OBSTACLES = ["决策链不清晰", "技术适配存疑", "预算审批未启动", "合同条款分歧"]

B2B: dict[str, Any] = {
    "key": "b2b",
    "name": "B2B项目销售",
    "default": True,
    "obstacle_options": DEFAULT_OBSTACLES,
    "crossing": ["初步沟通", "方案报价"],
    "stages": [
        {"name": "新线索", "limit_days": 3},
        {"name": "初步沟通", "limit_days": 7},
        {"name": "需求确认", "limit_days": 14},
        {"name": "方案报价", "limit_days": 5, "working": True},
        {"name": "商务谈判", "limit_days": 21},
        {"name": "签约", "limit_days": 14, "deliverables": ["签字页"]},
        {"name": "回款", "limit_days": 30},
    ],
}

HOSPITAL: dict[str, Any] = {
    "key": "hospital",
    "name": "医院准入",
    "default": False,
    "obstacle_options": DEFAULT_OBSTACLES,
    "crossing": ["获取科室使用意向书", "招标文件获取"],
    "stages": [
        {"name": "完成产品备案资料提交", "limit_days": 10, "working": True, "deliverables": ["备案回执扫描件"]},
        {"name": "获取科室使用意向书", "limit_days": 20, "working": True, "deliverables": ["意向书扫描件"]},
        {"name": "进入医院采购目录初审", "limit_days": 30, "deliverables": ["初审通知截图"]},
        {
            "name": "招标文件获取",
            "limit_days": 3,
            "deliverables": ["招标文件"],
            "overdue": [{"push": "三甲医院招标应答话术包"}, {"notify": "manager"}],
        },
        {"name": "投标/议价", "limit_days": 15, "deliverables": ["投标文件签字页"]},
        {"name": "中标/入院", "limit_days": 30, "deliverables": ["中标通知书扫描件"]},
        {"name": "首单使用", "limit_days": 30, "deliverables": ["首单发货单"]},
    ],
}

STORE: dict[str, Any] = {
    "key": "store",
    "name": "门店销售",
    "default": False,
    "obstacle_options": ["价格顾虑", "效果存疑", "需家人商量", "竞品对比中"],
    "crossing": ["到店/咨询", "报价"],
    "stages": [
        {"name": "到店/咨询", "limit_days": 1},
        {"name": "体验/试用", "limit_days": 3},
        {"name": "报价", "limit_days": 2},
        {"name": "成交", "limit_days": 3},
        {"name": "交付/安装", "limit_days": 7, "deliverables": ["安装验收照片"]},
        {"name": "复购", "limit_days": 60},
    ],
}

TEMPLATES = (B2B, HOSPITAL, STORE)
