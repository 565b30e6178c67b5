"""The browser console (§13): pages for staff and customers, served by the API's own app."""
