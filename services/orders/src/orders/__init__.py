"""Fleet orders: places, lists and cancels orders and drives the order saga."""
