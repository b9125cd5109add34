"""Fleet's microservice chassis: the mechanism every service is built on, never domain logic."""
