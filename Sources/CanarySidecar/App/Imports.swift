import CompressNIO
import Hummingbird
import ServiceLifecycle
import Yams
