"""Who is asking and what they may do: users, groups, tokens, accounts, audit."""
