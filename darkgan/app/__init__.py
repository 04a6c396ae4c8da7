"""darkgan.app"""
