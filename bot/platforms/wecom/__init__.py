"""WeCom (企业微信) self-built app: callback endpoint, sender, card renderer and directory sync.

See docs/wecom.md for the admin-console set-up and the ``[wecom]`` configuration keys.
"""
