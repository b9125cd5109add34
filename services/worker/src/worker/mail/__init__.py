"""E-mail to customers: composed when an event is consumed, sent by a background sender."""
