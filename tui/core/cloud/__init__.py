"""The cloud room: a provider-neutral interface (base), launch planning, and the openstacksdk facade."""
