"""The audit log: who changed what, when and from where, recorded at the request edge."""
