"""Fleet orders: places, lists and cancels orders (the saga arrives with the event backbone)."""
