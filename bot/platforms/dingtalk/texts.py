"""What DingTalk-specific notices say to people (Simplified Chinese)."""

QUOTA_WARNING = (
    "【钉钉接口用量提醒】本月已调用计量接口 {calls} 次,达到额度 {quota} 次的 {percent}%。"
    "超出额度后钉钉将拒绝发送消息和卡片(错误码 90020)。"
    "请在钉钉开发者后台查看用量,或升级套餐;配置项 dingtalk.monthly_api_quota 应与套餐额度一致。"
)
