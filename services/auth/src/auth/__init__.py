"""Fleet auth: accounts, OAuth 2.0 password and refresh grants, EdDSA access tokens, JWKS."""
