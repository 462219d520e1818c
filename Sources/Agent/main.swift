import AgentKit

runAuctionAgent()
