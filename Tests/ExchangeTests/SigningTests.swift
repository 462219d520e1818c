import Exchange
import Testing

/// Check values of docs/BYBIT.md.
@Suite(.tags(.unit)) struct SigningTests {
    @Test func restSignatureMatchesBybitsCheckValue() {
        let sign = BybitSigner.restSignature(
            timestamp: 1_658_384_314_791, apiKey: "XXXXXXXXXX", recvWindow: 5000,
            payload: "category=option&symbol=BTC-29JUL22-25000-C", secret: "YYYYYYYYYY"
        )
        #expect(sign == "37813c67fafb3017e92354eb88f218e7e52a98f9f5eb74cfcf0b21f17edb143b")
    }

    @Test func websocketAuthSignatureMatchesBybitsCheckValue() {
        #expect(
            BybitSigner.websocketSignature(expires: 1_662_350_400_000, secret: "YYYYYYYYYY")
                == "9c4c0629fddfee26ca0da50a7fed51968fce6935d34b02e772d3bd0c34327bd1"
        )
    }

    @Test func hmacOfAKnownVector() {
        // RFC 4231 test case 2.
        #expect(
            BybitSigner.hmacSHA256Hex(key: "Jefe", message: "what do ya want for nothing?")
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        )
    }
}
