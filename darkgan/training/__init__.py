"""darkgan.training"""
