"""darkgan.teacher"""
