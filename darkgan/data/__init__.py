"""darkgan.data"""
