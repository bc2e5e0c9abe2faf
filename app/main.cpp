#include <iostream>
#include "piracy/version.hpp"
int main() { std::cout << piracy::kVersion << "\n"; }
