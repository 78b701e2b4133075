#include <gtest/gtest.h>
#include "torp/error.hpp"
TEST(Error, CodesHaveStableIds) { EXPECT_EQ(torp::to_string(torp::ErrorCode::no_model), "no_model"); }
