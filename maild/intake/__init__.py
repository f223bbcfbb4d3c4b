"""How mail reaches the spool: an SMTP/LMTP listener, IMAP polling, or `maild inject` on stdin."""
