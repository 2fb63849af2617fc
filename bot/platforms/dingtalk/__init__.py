"""DingTalk (钉钉) enterprise internal app robot: HTTP callbacks or Stream, sender, cards, quota, directory sync.

See docs/dingtalk.md for the developer-console set-up and the ``[dingtalk]`` configuration keys.
"""
