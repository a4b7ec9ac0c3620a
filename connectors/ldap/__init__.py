"""LDAP directories (OpenLDAP with ppolicy, and any server with the Password Modify operation): what the bundled
"reset-password" and "unlock-account" workflows do to a person's account, configured under
`automation.directories` (`itsm_core.automation.spec.LdapDirectory`). `directory` states the rights the bind
account needs and the errors it raises.
"""

from connectors.ldap.directory import Directory, new_password

__all__ = ["Directory", "new_password"]
