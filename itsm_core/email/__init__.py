"""The email channel's rules: what a mail is for (noise, duplicate, flood, reply, new ticket) and what it leaves."""
